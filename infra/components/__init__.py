"""One `ComponentResource` per concern; `infra/program.py` composes them."""
