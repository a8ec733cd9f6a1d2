"""HTTP services and their clients: the OpenAI-compatible policy server
(`openai_server`), the PRM server (`prm_server`, batching in `batching`), its
client (`prm_client`), and the client of PRMs served by vLLM (`vllm_prm`).

The servers import FastAPI, an optional dependency (`pip install mmprm[serve]`),
so nothing is imported here.
"""
