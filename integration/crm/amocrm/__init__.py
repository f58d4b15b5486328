"""amoCRM / Kommo: call notes through the REST API v4, OAuth 2 tokens, the widget's one-time tokens."""
