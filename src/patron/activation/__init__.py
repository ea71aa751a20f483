"""Activation: turn scores into action — segments, audiences, playbooks and the files exported to platforms."""
