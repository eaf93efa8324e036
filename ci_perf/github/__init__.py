"""Everything that knows about GitHub: the runner's environment, the API gateway, publishing."""
