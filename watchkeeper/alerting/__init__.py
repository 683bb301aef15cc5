"""Acting on verdicts: alert records, routing policy, delivery channels and the outbox."""
