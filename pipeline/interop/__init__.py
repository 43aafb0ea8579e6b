"""Moving models and results between vlmembed and the tools beside it: Hugging Face / PEFT
folders, MTEB and VLM2Vec result files."""
