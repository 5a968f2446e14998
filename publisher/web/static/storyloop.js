/* storyloop.js: keeps the click id (sl_cid) a reader arrived with and adds it to the cart and
   checkout, so the shop's order webhook can credit the post that brought them.
   First-party: it stores the id in this shop's own storage, for 30 days. No dependencies. */
(function () {
  "use strict";
  var P = "sl_cid", K = "storyloop_cid", DAYS = 30, ID = /^[0-9A-Za-z]{6,32}\.[0-9a-f]{1,31}$/;
  var me = document.currentScript;
  var field = (me && me.getAttribute("data-field")) || "attributes[sl_cid]";
  function save(id) {
    try { localStorage.setItem(K, JSON.stringify({ id: id, t: Date.now() })); } catch (e) {}
    document.cookie = K + "=" + id + "; path=/; max-age=" + DAYS * 86400 + "; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }
  function load() {
    try {
      var v = JSON.parse(localStorage.getItem(K) || "null");
      if (v && ID.test(v.id) && Date.now() - v.t < DAYS * 864e5) { return v.id; }
    } catch (e) {}
    var m = document.cookie.match(/(?:^|; )storyloop_cid=([^;]+)/);
    return m && ID.test(m[1]) ? m[1] : null;
  }
  var landed = new URLSearchParams(location.search).get(P);
  if (landed && ID.test(landed)) { save(landed); }
  var id = load();
  if (!id) { return; }
  window.storyloop = { clickId: id };
  function forms() {
    var found = document.querySelectorAll(
      'form[action*="/cart"], form[action*="checkout"], form[data-storyloop]');
    Array.prototype.forEach.call(found, function (f) {
      if (f.querySelector('input[name="' + field + '"]')) { return; }
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = field;
      input.value = id;
      f.appendChild(input);
    });
  }
  function links() {
    var found = document.querySelectorAll(
      'a[href*="/cart"], a[href*="/checkout"], a[data-storyloop]');
    Array.prototype.forEach.call(found, function (a) {
      try {
        var u = new URL(a.href, location.href);
        if (u.origin !== location.origin && !a.hasAttribute("data-storyloop")) { return; }
        if (!u.searchParams.has(field)) { u.searchParams.set(field, id); a.href = u.href; }
      } catch (e) {}
    });
  }
  function run() { forms(); links(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
  new MutationObserver(run).observe(document.documentElement, { childList: true, subtree: true });
})();
