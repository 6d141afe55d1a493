"""Coupons, draws, reservations, follows, invites, replays and clips (live rooms issue)."""
