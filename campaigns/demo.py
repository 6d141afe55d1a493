"""Campaign demo data (SMS console backend, WeChat account, journeys) arrives with its issues."""


def seed(ctx) -> None:
    from campaigns.demo_wechat import seed_wechat

    seed_wechat(ctx)
