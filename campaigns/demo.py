"""Campaign demo data (SMS console backend, WeChat account, journeys) arrives with its issues."""


def seed(ctx) -> None:
    return None
