"""Example models, data and entry points for lightning-auxprune."""
