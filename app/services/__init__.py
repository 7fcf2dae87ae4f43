"""What the API does, one function per use case; resources call these and nothing else."""
