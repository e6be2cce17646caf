// Anonymizer: text → masked text with each entity highlighted by type, the mappings table,
// copy, and restore (placeholders put back from the mappings, in the browser).
"use strict";
(function () {
  var last = null;

  // One colour per entity type (a hue from the type's name), so types tell apart at a glance.
  function colour(type) {
    var h = 0;
    for (var i = 0; i < type.length; i++) h = (h * 31 + type.charCodeAt(i)) % 360;
    return "hsl(" + h + ", 65%, 45%)";
  }

  function highlight(text, mappings) {
    var out = App.$("anon-output");
    out.textContent = "";
    var byPh = {};
    mappings.forEach(function (m) { byPh[m.placeholder] = m; });
    var keys = Object.keys(byPh).sort(function (a, b) { return b.length - a.length; });
    var i = 0, plain = "";
    while (i < text.length) {
      var hit = null;
      for (var k = 0; k < keys.length; k++) {
        if (text.substr(i, keys[k].length) === keys[k]) { hit = byPh[keys[k]]; break; }
      }
      if (hit) {
        if (plain) { out.appendChild(document.createTextNode(plain)); plain = ""; }
        var mk = App.el("mark", { "data-type": hit.type, title: hit.type }, hit.placeholder);
        mk.appendChild(App.el("small", null, hit.type));
        mk.style.borderColor = colour(hit.type);
        out.appendChild(mk);
        i += hit.placeholder.length;
      } else { plain += text[i]; i += 1; }
    }
    if (plain) out.appendChild(document.createTextNode(plain));
  }

  function table(mappings) {
    var body = document.querySelector("#anon-map tbody");
    body.textContent = "";
    mappings.forEach(function (m) {
      var tr = App.el("tr");
      tr.appendChild(App.el("td", null, m.placeholder));
      tr.appendChild(App.el("td", null, m.type));
      tr.appendChild(App.el("td", null, m.original));
      body.appendChild(tr);
    });
  }

  function run() {
    App.$("anon-error").textContent = "";
    App.$("anon-restored").textContent = "";
    App.json("/ui/api/anonymize", "POST", { text: App.$("anon-input").value, algorithm: App.$("anon-algo").value })
      .then(function (r) {
        last = r;
        highlight(r.text, r.mappings);
        table(r.mappings);
        var types = {};
        r.mappings.forEach(function (m) { types[m.type] = (types[m.type] || 0) + 1; });
        App.$("anon-state").textContent = t("anon.found") + Object.keys(types).map(function (k) { return k + "×" + types[k]; }).join(", ");
      }, function (e) { App.$("anon-error").textContent = e.message; });
  }

  function restore() {
    if (!last) return;
    var text = last.text;
    last.mappings.forEach(function (m) { text = text.split(m.placeholder).join(m.original); });
    App.$("anon-restored").textContent = text;
  }

  function copy() {
    if (!last) return;
    var done = function () { App.$("anon-state").textContent = t("anon.copied"); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(last.text).then(done, function () { fallback(); done(); });
    } else { fallback(); done(); }
    function fallback() {
      var ta = App.el("textarea"); ta.value = last.text; document.body.appendChild(ta);
      ta.select(); try { document.execCommand("copy"); } catch (e) { /* nothing to do */ }
      document.body.removeChild(ta);
    }
  }

  App.pages.anonymizer = {};
  document.addEventListener("DOMContentLoaded", function () {
    App.$("anon-run").addEventListener("click", run);
    App.$("anon-restore").addEventListener("click", restore);
    App.$("anon-copy").addEventListener("click", copy);
  });
})();
