"""Test-owned stand-ins for external services, speaking their real protocols."""
