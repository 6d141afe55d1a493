"""WeChat official accounts and mini-programs, callbacks and windows (WeChat identity issue)."""
