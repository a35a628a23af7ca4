"""Contrastive language-crystal pretraining."""
