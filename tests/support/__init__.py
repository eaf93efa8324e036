"""Helpers the tests share that are not fixtures: the stateful fake GitHub and synthetic runs."""
