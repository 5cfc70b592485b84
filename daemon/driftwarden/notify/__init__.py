"""Notifications: what a message says (`render`, pure) and its delivery (`deliver`,
apprise). Import from the modules; this file imports nothing, so a command that sends
nothing never loads apprise."""
