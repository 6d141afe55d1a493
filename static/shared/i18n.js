// Translation for page scripts. Strings are written in Chinese (the default language) and
// looked up in Django's JavaScript catalog (/jsi18n/, loaded by base.html before any module);
// English lives in locale/en/LC_MESSAGES/djangojs.po.
const catalog = globalThis;

/** Translate one message: t("已抢光"). */
export function t(msgid) {
  return typeof catalog.gettext === "function" ? catalog.gettext(msgid) : msgid;
}

/** Translate a word whose English depends on where it stands: pt("room stats", "点赞"). */
export function pt(context, msgid) {
  return typeof catalog.pgettext === "function" ? catalog.pgettext(context, msgid) : msgid;
}

/** Translate with a count: tn("{n} 人在线", "{n} 人在线", n), then fill with fmt(). */
export function tn(singular, plural, count) {
  return typeof catalog.ngettext === "function"
    ? catalog.ngettext(singular, plural, count)
    : singular;
}

/** Fill {name} placeholders: fmt(t("还剩 {n} 张"), { n: 3 }). */
export function fmt(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) =>
    Object.hasOwn(values, key) ? String(values[key]) : whole,
  );
}

/** The page's language ("zh-hans" or "en"), for Intl formatting. */
export function lang() {
  return document.documentElement.lang || "zh-hans";
}
