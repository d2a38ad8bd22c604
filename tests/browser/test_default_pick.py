"""The chat page selects the model its server marks default, unless the person chose one before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import HOSTED_ID, open_chat
from tests.fakemodel import write_fake_model

pytestmark = pytest.mark.browser

# Sorts after HOSTED_ID, so it is not the picker's first option: selecting it takes the default flag.
DEFAULT_ID = "Zephyr-Default-q4f32_1"
SELECTED_KEY = "hearth.selectedModel"


@pytest.fixture
def models_dir(models_dir: Path) -> Path:
    model = write_fake_model(models_dir, model_id=DEFAULT_ID)
    (model / "hearth-model.json").write_text(json.dumps({"display_name": "Built in", "default": True}))
    return models_dir


def _remember(page: Page, model_id: str) -> None:
    page.add_init_script(f"localStorage.setItem({json.dumps(SELECTED_KEY)}, {json.dumps(model_id)})")


def test_with_no_choice_the_servers_default_model_is_selected(page: Page) -> None:
    chat = open_chat(page)
    assert chat.locator("#model-select option").first.get_attribute("value") == HOSTED_ID
    assert chat.input_value("#model-select") == DEFAULT_ID
    assert chat.is_enabled("#load-model")


def test_a_remembered_choice_wins_over_the_default(page: Page) -> None:
    _remember(page, HOSTED_ID)
    assert open_chat(page).input_value("#model-select") == HOSTED_ID


def test_a_remembered_model_that_is_gone_falls_back_to_the_default(page: Page) -> None:
    _remember(page, "Removed-Model-q4f32_1")
    assert open_chat(page).input_value("#model-select") == DEFAULT_ID
