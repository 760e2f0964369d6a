"""Training, evaluation and publishing of SemFlow models on Hugging Face `datasets`."""
