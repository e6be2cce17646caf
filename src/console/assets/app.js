// The console's shell: session and log-in, navigation, language, theme, and the fetch helper
// every page uses (it adds the session's CSRF token to writes).
"use strict";
window.App = {
  lang: "pl",
  session: null,
  pages: {},
  current: null,

  $: function (id) { return document.getElementById(id); },

  el: function (tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  },

  // fetch with the CSRF header on writes; resolves to the Response (callers check .ok).
  fetch: function (path, opts) {
    opts = opts || {};
    opts.headers = opts.headers || {};
    opts.credentials = "same-origin";
    var m = (opts.method || "GET").toUpperCase();
    if (m !== "GET" && m !== "HEAD" && App.session && App.session.csrf) {
      opts.headers["x-csrf-token"] = App.session.csrf;
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401 && App.session && App.session.auth_enabled) App.showLogin();
      return r;
    });
  },

  // JSON in, JSON out; rejects with a message taken from the router's error body.
  json: function (path, method, body) {
    var opts = { method: method || "GET" };
    if (body !== undefined) {
      opts.headers = { "content-type": "application/json" };
      opts.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    return App.fetch(path, opts).then(function (r) {
      return r.text().then(function (text) {
        var v = null;
        try { v = text ? JSON.parse(text) : null; } catch (e) { v = null; }
        if (!r.ok) {
          var err = v && v.error ? v.error : null;
          var msg = err ? (err.message || JSON.stringify(err)) : (text || ("HTTP " + r.status));
          if (err && err.problems && err.problems.length) msg += "\n" + err.problems.join("\n");
          var e = new Error(msg); e.status = r.status; throw e;
        }
        return v;
      });
    });
  },

  translate: function () {
    document.documentElement.lang = App.lang;
    document.querySelectorAll("[data-i18n]").forEach(function (e) { e.textContent = t(e.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-ph]").forEach(function (e) { e.placeholder = t(e.getAttribute("data-i18n-ph")); });
    App.$("lang").value = App.lang;
    Object.keys(App.pages).forEach(function (k) { if (App.pages[k].translate) App.pages[k].translate(); });
  },

  setTheme: function (theme) {
    document.documentElement.setAttribute("data-theme", theme);
    try { localStorage.setItem("llmr-theme", theme); } catch (e) { /* private mode */ }
  },

  show: function (name) {
    var can = (App.session && App.session.can) || {};
    document.querySelectorAll(".page").forEach(function (p) { p.hidden = true; });
    document.querySelectorAll(".tab").forEach(function (b) {
      if (b.getAttribute("data-page") === name) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    });
    if (App.current && App.pages[App.current] && App.pages[App.current].hide) App.pages[App.current].hide();
    App.current = name;
    App.$("page-" + name).hidden = false;
    if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
    if (App.pages[name] && App.pages[name].show) App.pages[name].show(can);
  },

  showLogin: function () {
    document.querySelectorAll(".page").forEach(function (p) { p.hidden = true; });
    App.$("nav").hidden = true;
    App.$("login").hidden = false;
    App.$("login-key").focus();
  },

  started: function (s) {
    App.session = s;
    App.$("login").hidden = true;
    App.$("nav").hidden = false;
    App.$("logout").hidden = !s.auth_enabled;
    App.$("who").textContent = s.key_id ? s.key_id + " (" + s.policy + ")" : "";
    // Pages the key's policy cannot use are not offered (the router refuses them anyway).
    var can = s.can || {};
    var usable = function (n) { return can[n] !== false; };
    document.querySelectorAll(".tab").forEach(function (b) { b.hidden = !usable(b.getAttribute("data-page")); });
    var name = (location.hash || "").replace("#", "");
    var first = ["status", "chat", "anonymizer", "config"].filter(usable)[0] || "chat";
    App.show(App.pages[name] && usable(name) ? name : first);
  },

  init: function () {
    var theme = null;
    try { theme = localStorage.getItem("llmr-theme"); } catch (e) { theme = null; }
    if (!theme) theme = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    App.setTheme(theme);
    App.$("theme").addEventListener("click", function () {
      App.setTheme(document.documentElement.getAttribute("data-theme") === "dark" ? "light" : "dark");
    });
    App.$("lang").addEventListener("change", function () {
      App.lang = App.$("lang").value;
      try { localStorage.setItem("llmr-lang", App.lang); } catch (e) { /* ignore */ }
      App.translate();
    });
    document.querySelectorAll(".tab").forEach(function (b) {
      b.addEventListener("click", function () { App.show(b.getAttribute("data-page")); });
    });
    App.$("login-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      App.$("login-error").textContent = "";
      App.json("/ui/api/login", "POST", { key: App.$("login-key").value }).then(function (s) {
        App.$("login-key").value = "";
        App.started(s);
      }, function (e) { App.$("login-error").textContent = t("login.failed") + ": " + e.message; });
    });
    App.$("logout").addEventListener("click", function () {
      App.json("/ui/api/logout", "POST").then(function () {
        App.session.csrf = null; App.showLogin();
      });
    });
    App.json("/ui/api/session").then(function (s) {
      var stored = null;
      try { stored = localStorage.getItem("llmr-lang"); } catch (e) { stored = null; }
      App.lang = stored || s.language || "pl";
      App.session = s;
      App.translate();
      if (s.auth_enabled && !s.logged_in) App.showLogin(); else App.started(s);
    });
  }
};
document.addEventListener("DOMContentLoaded", App.init);
