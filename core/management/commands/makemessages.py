"""Django's makemessages, also extracting the page scripts' t()/tn() (static/shared/i18n.js)."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    # Page scripts translate through short helpers (t, tn, pt); xgettext only knows gettext()/ngettext()
    # by default, and makemessages has no keyword option. Only for the djangojs domain, so a
    # Python name t() never ends up in django.po.
    js_keywords = ["--keyword=t", "--keyword=tn:1,2", "--keyword=pt:1c,2"]

    def handle(self, *args, **options):
        if options.get("domain") == "djangojs":
            self.xgettext_options = [*self.xgettext_options, *self.js_keywords]
        super().handle(*args, **options)
