// Status: every model and provider from /router/stats, refreshed every 2 s while shown.
"use strict";
(function () {
  var timer = null;
  var last = null;
  function pct(p) { return p ? Math.round(p.p50) + " / " + Math.round(p.p95) + " ms" : "–"; }
  function errors(e) {
    var n = 0, parts = [];
    Object.keys(e || {}).forEach(function (k) { if (e[k]) { n += e[k]; parts.push(k + ": " + e[k]); } });
    return n ? n + " (" + parts.join(", ") + ")" : "0";
  }
  function render() {
    if (!last) return;
    var body = document.querySelector("#status-table tbody");
    body.textContent = "";
    last.models.forEach(function (m) {
      m.providers.forEach(function (p, i) {
        var tr = App.el("tr", { "data-provider": p.id, "data-health": p.health });
        tr.appendChild(App.el("td", null, i === 0 ? m.name : ""));
        tr.appendChild(App.el("td", null, p.id));
        tr.appendChild(App.el("td", null, p.api_type));
        var td = App.el("td");
        td.appendChild(App.el("span", { "class": "badge h-" + p.health }, t("health." + p.health)));
        tr.appendChild(td);
        tr.appendChild(App.el("td", null, p.in_flight));
        tr.appendChild(App.el("td", null, p.requests));
        tr.appendChild(App.el("td", null, errors(p.errors)));
        tr.appendChild(App.el("td", null, pct(p.latency_ms)));
        tr.appendChild(App.el("td", null, pct(p.ttft_ms)));
        body.appendChild(tr);
      });
    });
    App.$("status-updated").textContent = new Date().toLocaleTimeString(App.lang);
  }
  function refresh() {
    App.json("/router/stats").then(function (s) {
      last = s; App.$("status-error").textContent = ""; render();
    }, function (e) {
      App.$("status-error").textContent = e.status === 403 ? t("status.noaccess") : e.message;
    });
  }
  App.pages.status = {
    show: function () { refresh(); clearInterval(timer); timer = setInterval(refresh, 2000); },
    hide: function () { clearInterval(timer); timer = null; },
    translate: render
  };
})();
