"""Pseudonymisation, erasure, differential privacy, federated training, audits."""
