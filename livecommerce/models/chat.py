"""Chat, moderation and presence models (real-time hub issue)."""
