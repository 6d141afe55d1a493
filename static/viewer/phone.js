// The phone step of the viewer page: a mainland mobile number, a 6-digit SMS code
// (POST /api/v1/viewer/phone/code, /verify), the privacy notice agreed to, and — when the
// phone is asked for a reminder — consent to that SMS. Verifying binds the phone to the
// viewer; when another contact already holds it, One-ID merges them and the API hands out a
// token for the surviving contact, which the page keeps from then on.

import { api } from "/static/viewer/api.js";
import { t, fmt } from "../shared/i18n.js";

const $ = (id) => document.getElementById(id);
const RESEND_SECONDS = 60;

function fieldError(name, text) {
  const node = document.querySelector(`#phone-form [data-error="${name}"]`);
  if (node) { node.textContent = text || ""; node.hidden = !text; }
}

function firstFieldError(error, name) {
  const list = error.fields && error.fields[name];
  return Array.isArray(list) ? list[0] : "";
}

/**
 * Ask for a phone. Resolves with {phone, token, contact_id, sms_consent} once verified,
 * or null when the viewer closes the sheet. ``smsConsent``: also ask consent to the SMS.
 */
export function askPhone({ session, title, why, smsConsent = false }) {
  const sheet = $("phone-sheet");
  const form = $("phone-form");
  const send = $("phone-send");
  $("phone-title").textContent = title || t("绑定手机号");
  $("phone-why").textContent = why || "";
  $("phone-sms-consent-row").hidden = !smsConsent;
  form.reset();
  for (const name of ["phone", "code", "privacy", "sms_consent"]) fieldError(name, "");
  sheet.hidden = false;
  form.elements.phone.focus();

  let timer = null;
  function countdown(seconds) {
    clearInterval(timer);
    let left = seconds;
    send.disabled = true;
    send.textContent = fmt(t("{n} 秒后重发"), { n: left });
    timer = setInterval(() => {
      left -= 1;
      if (left <= 0) { clearInterval(timer); send.disabled = false; send.textContent = t("获取验证码"); return; }
      send.textContent = fmt(t("{n} 秒后重发"), { n: left });
    }, 1000);
  }

  return new Promise((resolve) => {
    function close(result) {
      clearInterval(timer);
      send.disabled = false;
      send.textContent = t("获取验证码");
      sheet.hidden = true;
      send.onclick = null;
      form.onsubmit = null;
      $("phone-cancel").onclick = null;
      resolve(result);
    }

    send.onclick = async () => {
      fieldError("phone", "");
      const phone = form.elements.phone.value.trim();
      if (!/^1\d{10}$/.test(phone.replace(/[\s-]/g, ""))) { fieldError("phone", t("请输入11位手机号")); return; }
      try {
        await api("/api/v1/viewer/phone/code", { method: "POST", token: session.token, body: { phone } });
        countdown(RESEND_SECONDS);
        $("phone-sent").textContent = fmt(t("验证码已发送至 {phone}"), { phone });
        $("phone-sent").hidden = false;
        form.elements.code.focus();
      } catch (error) {
        fieldError("phone", firstFieldError(error, "phone") || error.message);
      }
    };

    form.onsubmit = async (event) => {
      event.preventDefault();
      for (const name of ["phone", "code", "privacy", "sms_consent"]) fieldError(name, "");
      const phone = form.elements.phone.value.trim();
      const code = form.elements.code.value.trim();
      let bad = false;
      if (!/^\d{6}$/.test(code)) { fieldError("code", t("请输入6位验证码")); bad = true; }
      if (!form.elements.privacy.checked) { fieldError("privacy", t("请先阅读并同意个人信息保护说明")); bad = true; }
      if (smsConsent && !form.elements.sms_consent.checked) { fieldError("sms_consent", t("请同意接收开播提醒短信")); bad = true; }
      if (bad) return;
      try {
        const data = await api("/api/v1/viewer/phone/verify", { method: "POST", token: session.token, body: { phone, code } });
        close({ phone, token: data.token, contact_id: data.contact_id, sms_consent: smsConsent && form.elements.sms_consent.checked });
      } catch (error) {
        fieldError("code", firstFieldError(error, "code") || firstFieldError(error, "phone") || error.message);
      }
    };
    $("phone-cancel").onclick = () => close(null);
  });
}
