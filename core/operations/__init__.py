"""Operations: monitoring streams, alert sinks, production feedback and retraining."""
