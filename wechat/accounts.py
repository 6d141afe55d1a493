"""Creating and updating WeChat accounts: the only place credentials are written."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core import pii
from core.errors import Conflict, DomainError
from core.models import Organization
from wechat.models import WeChatAccount, WeChatAccountKind, WeChatEncryptMode

_APPID_HASH_KIND = "wechat_appid"


def appid_hash(appid: str) -> str:
    return pii.lookup_hash(_APPID_HASH_KIND, appid)


def _validate(*, kind: str, encrypt_mode: str, aes_key: str, token: str) -> None:
    if kind not in WeChatAccountKind.values:
        raise DomainError(_("类型无效"), fields={"kind": [_("类型无效")]})
    if encrypt_mode not in WeChatEncryptMode.values:
        raise DomainError(_("加解密方式无效"), fields={"encrypt_mode": [_("加解密方式无效")]})
    if encrypt_mode == WeChatEncryptMode.SAFE and len(aes_key) != 43:
        raise DomainError(
            _("安全模式需要 43 位 EncodingAESKey"),
            fields={"aes_key": [_("安全模式需要 43 位 EncodingAESKey")]},
        )
    if kind == WeChatAccountKind.OFFICIAL and not token:
        raise DomainError(_("公众号需要回调 Token"), fields={"token": [_("公众号需要回调 Token")]})


def wechat_account_create(
    *,
    org: Organization,
    name: str,
    appid: str,
    secret: str = "",
    kind: str = WeChatAccountKind.OFFICIAL,
    token: str = "",
    encrypt_mode: str = WeChatEncryptMode.PLAIN,
    aes_key: str = "",
    welcome_text: str = "",
) -> WeChatAccount:
    """Register an official account or mini-program; secrets are encrypted at rest."""
    _validate(kind=kind, encrypt_mode=encrypt_mode, aes_key=aes_key, token=token)
    try:
        with transaction.atomic():
            return WeChatAccount.objects.for_org(org).create(
                org=org,
                kind=kind,
                name=name,
                appid_encrypted=pii.encrypt(appid),
                appid_hash=appid_hash(appid),
                secret_encrypted=pii.encrypt(secret) if secret else "",
                aes_key_encrypted=pii.encrypt(aes_key) if aes_key else "",
                token=token,
                encrypt_mode=encrypt_mode,
                welcome_text=welcome_text,
            )
    except IntegrityError:
        raise Conflict(_("该 AppID 已登记"), fields={"appid": [_("该 AppID 已登记")]}) from None


def wechat_account_update(
    *,
    account: WeChatAccount,
    name: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    encrypt_mode: str | None = None,
    aes_key: str | None = None,
    welcome_text: str | None = None,
    is_active: bool | None = None,
) -> WeChatAccount:
    """Change an account. ``None`` keeps a value; an empty secret/AES key also keeps it
    (secrets are never shown back, so a form left blank means "unchanged")."""
    new_mode = encrypt_mode or account.encrypt_mode
    new_aes = aes_key or account.aes_key()
    new_token = token if token is not None else account.token
    _validate(kind=account.kind, encrypt_mode=new_mode, aes_key=new_aes, token=new_token)
    if name is not None:
        account.name = name
    if secret:
        account.secret_encrypted = pii.encrypt(secret)
    if aes_key:
        account.aes_key_encrypted = pii.encrypt(aes_key)
    if welcome_text is not None:
        account.welcome_text = welcome_text
    if is_active is not None:
        account.is_active = is_active
    account.token = new_token
    account.encrypt_mode = new_mode
    account.save()
    return account


def wechat_account_find_by_appid(*, org: Organization | int, appid: str) -> WeChatAccount | None:
    return WeChatAccount.objects.for_org(org).filter(appid_hash=appid_hash(appid)).first()
