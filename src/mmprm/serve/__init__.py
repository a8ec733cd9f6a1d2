"""HTTP services: an OpenAI-compatible policy server (`openai_server`).

Submodules import FastAPI, an optional dependency (`pip install mmprm[serve]`),
so nothing is imported here.
"""
