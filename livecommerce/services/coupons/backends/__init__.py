"""The claim backends behind ``coupons.claim`` (``COUPON_CLAIM_BACKEND``): ``db``, ``pg``,
``redis``. Each answers the one contract of ``coupons.contract``."""
