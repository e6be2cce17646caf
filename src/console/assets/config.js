// Config: the models config (secrets shown as a placeholder), active-model checkboxes, apply
// (validated by the router as at start-up, applied through the reload path), import/export,
// and the version history with diff and restore.
"use strict";
(function () {
  var doc = null;

  function msg(ok, err) { App.$("config-ok").textContent = ok || ""; App.$("config-error").textContent = err || ""; }

  function parsed() {
    try { return JSON.parse(App.$("config-text").value); } catch (e) { msg("", t("config.badjson") + e.message); return null; }
  }

  function setText(d) { App.$("config-text").value = JSON.stringify(d, null, 2); models(d); }

  // Checkboxes: every model of every group; checked = listed in active_models.
  function models(d) {
    var box = App.$("config-models");
    box.textContent = "";
    if (!d || typeof d !== "object") return;
    var active = d.active_models || {};
    Object.keys(d).forEach(function (g) {
      if (g === "active_models" || !d[g] || typeof d[g] !== "object") return;
      Object.keys(d[g]).forEach(function (name) {
        var id = "cm-" + g + "-" + name;
        var l = App.el("label", { "for": id });
        var c = App.el("input", { type: "checkbox", id: id, "data-group": g, "data-model": name });
        c.checked = (active[g] || []).indexOf(name) >= 0;
        c.addEventListener("change", function () {
          var cur = parsed(); if (!cur) { c.checked = !c.checked; return; }
          cur.active_models = cur.active_models || {};
          var list = cur.active_models[g] || [];
          if (c.checked && list.indexOf(name) < 0) list.push(name);
          if (!c.checked) list = list.filter(function (x) { return x !== name; });
          cur.active_models[g] = list;
          App.$("config-text").value = JSON.stringify(cur, null, 2);
        });
        l.appendChild(c);
        l.appendChild(document.createTextNode(g + " / " + name));
        box.appendChild(l);
      });
    });
  }

  function load() {
    App.json("/router/config").then(function (r) { doc = r.config; setText(doc); }, function (e) {
      msg("", e.status === 403 ? t("config.noaccess") : e.message);
    });
    history();
  }

  function history() {
    App.json("/router/config/history").then(function (r) {
      var body = document.querySelector("#config-history tbody");
      body.textContent = "";
      r.versions.forEach(function (v) {
        var tr = App.el("tr", { "data-version": v.id });
        tr.appendChild(App.el("td", null, v.id));
        tr.appendChild(App.el("td", null, new Date(v.applied_at).toLocaleString(App.lang)));
        tr.appendChild(App.el("td", null, v.cause));
        var td = App.el("td");
        var d = App.el("button", { type: "button", "class": "diff-btn" }, t("config.show_diff"));
        d.addEventListener("click", function () { diff(v.id); });
        var rs = App.el("button", { type: "button", "class": "restore-btn" }, t("config.restore"));
        rs.addEventListener("click", function () { restore(v.id); });
        td.appendChild(d); td.appendChild(rs); tr.appendChild(td);
        body.appendChild(tr);
      });
    }, function () { /* shown by load() */ });
  }

  function apply(body, cause) {
    msg("", "");
    return App.json("/router/config/apply?cause=" + encodeURIComponent(cause), "POST", body).then(function (r) {
      msg(t("config.applied") + r.version + " (" + r.models + " models, " + r.providers + " providers)");
      load();
    }, function (e) { msg("", e.message); });
  }

  function restore(id) {
    msg("", "");
    App.json("/router/config/history/" + id + "/restore", "POST").then(function (r) {
      msg(t("config.applied") + r.version);
      load();
    }, function (e) { msg("", e.message); });
  }

  // Line diff (longest common subsequence) of two pretty-printed documents.
  function lineDiff(a, b) {
    var x = a.split("\n"), y = b.split("\n"), n = x.length, m = y.length;
    var L = []; for (var i = 0; i <= n; i++) { L.push(new Array(m + 1).fill(0)); }
    for (i = n - 1; i >= 0; i--) for (var j = m - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    var out = []; i = 0; j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
      else if (L[i + 1][j] >= L[i][j + 1]) { out.push(["-", x[i]]); i++; }
      else { out.push(["+", y[j]]); j++; }
    }
    while (i < n) out.push(["-", x[i++]]);
    while (j < m) out.push(["+", y[j++]]);
    return out;
  }

  function diff(id) {
    App.json("/router/config/history/" + id).then(function (v) {
      var pre = App.$("config-diff");
      pre.textContent = "";
      pre.appendChild(App.el("div", { "class": "muted" }, t("config.diff_vs").replace("{a}", id)));
      var lines = lineDiff(JSON.stringify(v.config, null, 2), JSON.stringify(doc, null, 2));
      var changed = lines.filter(function (l) { return l[0] !== " "; });
      if (!changed.length) pre.appendChild(App.el("div", null, t("config.nodiff")));
      lines.forEach(function (l, k) {
        var near = lines.slice(Math.max(0, k - 2), k + 3).some(function (z) { return z[0] !== " "; });
        if (!near) return;
        pre.appendChild(App.el("div", { "class": l[0] === "+" ? "add" : l[0] === "-" ? "del" : "" }, l[0] + " " + l[1]));
      });
    }, function (e) { msg("", e.message); });
  }

  App.pages.config = { show: function () { msg("", ""); load(); } };
  document.addEventListener("DOMContentLoaded", function () {
    App.$("config-apply").addEventListener("click", function () {
      var d = parsed(); if (d) apply(d, "edited");
    });
    App.$("config-reload").addEventListener("click", load);
    App.$("config-text").addEventListener("change", function () { var d = parsed(); if (d) { models(d); msg("", ""); } });
    App.$("config-export").addEventListener("click", function () {
      var blob = new Blob([App.$("config-text").value], { type: "application/json" });
      var a = App.el("a", { href: URL.createObjectURL(blob), download: "models-config.json" });
      document.body.appendChild(a); a.click(); document.body.removeChild(a);
    });
    App.$("config-import-btn").addEventListener("click", function () { App.$("config-import").click(); });
    App.$("config-import").addEventListener("change", function (ev) {
      var f = ev.target.files[0]; if (!f) return;
      f.text().then(function (text) {
        App.$("config-text").value = text;
        var d = parsed(); if (d) { models(d); msg(t("config.imported")); }
        ev.target.value = "";
      });
    });
  });
})();
