"""The hub: fine-tuned versions and their records, packaged base models, exports and the @serving pointer."""
