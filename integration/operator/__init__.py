"""The operator's Integration API: client, token lifecycle and payload schemas."""
