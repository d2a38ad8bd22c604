"""The MLC model format that WebLLM loads: file names, reading and checking a model directory."""
