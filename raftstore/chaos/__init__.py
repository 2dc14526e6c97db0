"""Chaos testing for raftstore: operation histories, synthetic workloads and consistency checkers."""
