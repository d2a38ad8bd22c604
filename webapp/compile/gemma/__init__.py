"""The Gemma 2 and Gemma 3 family: config reader, model definition and numpy reference."""
