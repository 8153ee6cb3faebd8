"""Creator Workspace core: the one door (`Studio`) and everything it stands on."""
