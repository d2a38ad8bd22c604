"""Leave out the KV cache's attention kernels WebLLM never calls, so the page does not compile them.

TVM's paged KV cache is created with every attention kernel it might need: beside the ones a chat
uses (ragged prefill, paged prefill, paged decode, merge) it gets a sliding-window prefill and
decode, and two tree-mask prefills for tree-structured speculative decoding. A page compiles every
kernel of the library before the first token, one after the other on SwiftShader, and these four
are the largest: 6.3 of the 10.7 s the built-in model's cached load spent compiling its 51 shaders.

WebLLM never decodes speculatively over a tree, and calls the sliding-window kernels only for
layers whose attention kind is "mha_sliding" (or when told the model has a sliding window, which
Hearth's mlc-chat-config.json never says: `sliding_window_size: -1`). So the tree-mask kernels go
from every cache, and the sliding-window ones from caches without sliding layers. The cache's
creator takes an empty tuple for a kernel it is not given (TVM passes one for MLA's); should the
runtime ever ask for a tree-mask kernel, it fails naming it rather than computing anything.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator
from tvm.relax.frontend.nn.llm.kv_cache import AttnKind

from webapp.compile.errors import CompileError

CREATE_CACHE = "vm.builtin.paged_attention_kv_cache_create"
# The creator's arguments (TVM 0.27, pinned), on every target: the sizes, the layer partition, four
# head counts and dimensions, the attention kind of each layer (6), ... the ragged prefill (15),
# paged prefill and decode, then the sliding-window prefill and decode (18, 19), the two tree-mask
# prefills (20, 21), MLA's prefill, ... 28 in all.
CREATOR_ARGS = 28
ATTN_KINDS = 6
SLIDING_WINDOW = (18, 19)
TREE_MASK = (20, 21)


def _is_cache_creation(call: relax.Call) -> bool:
    return (
        call.op == tvm.ir.Op.get("relax.call_pure_packed")
        and isinstance(call.args[0], relax.ExternFunc)
        and call.args[0].global_symbol == CREATE_CACHE
    )


def _unused(args: list[relax.Expr]) -> tuple[int, ...]:
    """Which of the creator's arguments are kernels this cache's runtime cannot call."""
    kernels = [args[i] for i in SLIDING_WINDOW + TREE_MASK]
    if len(args) != CREATOR_ARGS or not isinstance(args[ATTN_KINDS], relax.ShapeExpr) or not all(
        isinstance(k, relax.Tuple) and len(k.fields) in (0, 2) for k in kernels
    ):
        raise CompileError(f"{CREATE_CACHE} takes other arguments than TVM 0.27's; update webapp/compile/unused_attention.py")
    sliding = any(int(kind) == int(AttnKind.MHA_SLIDING) for kind in args[ATTN_KINDS].values)
    return TREE_MASK if sliding else SLIDING_WINDOW + TREE_MASK


@mutator
class _Trim(PyExprMutator):  # pylint: disable=abstract-method
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.dropped: set[str] = set()  # the kernels no longer passed to the cache

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        if not _is_cache_creation(call):
            return super().visit_call_(call)
        creator, *args = call.args
        unused = _unused(args)
        self.dropped |= {args[i].fields[1].name_hint for i in unused if args[i].fields}
        args = [relax.Tuple([]) if i in unused else arg for i, arg in enumerate(args)]
        return relax.Call(call.op, [creator, *args], call.attrs, call.ty_args, call.span)

    def trim(self, mod: tvm.IRModule) -> tvm.IRModule:
        for gvar, func in list(mod.functions_items()):
            if isinstance(func, relax.Function):
                self.builder_.update_func(gvar, self.visit_expr(func))
        return self.builder_.get()


def _called(mod: tvm.IRModule) -> set[str]:
    """The global functions the module's Relax functions refer to."""
    names: set[str] = set()

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.GlobalVar):
            names.add(expr.name_hint)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return names


@tvm.transform.module_pass(opt_level=0, name="DropUnusedAttention")
class DropUnusedAttention:  # pylint: disable=too-few-public-methods
    """Pass the KV cache no kernel WebLLM cannot call, and leave those kernels out of the module.

    (Dead-code elimination keeps them: a TIR function with a global symbol counts as exported.)"""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        trim = _Trim(mod)
        trimmed = trim.trim(mod)
        gone = trim.dropped - _called(trimmed)
        kept = {gvar: func for gvar, func in trimmed.functions_items() if gvar.name_hint not in gone}
        return tvm.IRModule(kept, attrs=trimmed.attrs, global_infos=trimmed.global_infos)
