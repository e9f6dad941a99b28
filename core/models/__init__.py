"""The model library heads share: LoRA, bi-encoders, vector search and the inference path."""
