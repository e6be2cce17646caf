// Chat: streams from the built-in chat route (P/chat/completions). With "Anonymize" on, the
// message (and system prompt) are masked first (POST /ui/api/anonymize) and the masked text is
// what is sent — shown under the message; placeholders in the answer are restored for display.
// Stop aborts the fetch, which closes the connection, so the router cancels the upstream call.
"use strict";
(function () {
  var history = [];
  var controller = null;
  var loaded = false;

  function prefix() { return (App.session && App.session.prefix) || ""; }
  function warn() { App.$("chat-warning").hidden = App.$("chat-anon").checked; }

  function loadModels() {
    App.json("/v1/models").then(function (v) {
      var sel = App.$("chat-model"), keep = sel.value;
      sel.textContent = "";
      (v.data || []).forEach(function (m) { sel.appendChild(App.el("option", { value: m.id }, m.id)); });
      if (keep) sel.value = keep;
      loaded = true;
    }, function (e) { App.$("chat-error").textContent = e.message; });
  }

  function restore(text, mappings) {
    mappings.forEach(function (m) { text = text.split(m.placeholder).join(m.original); });
    return text;
  }

  function add(role, text) {
    var d = App.el("div", { "class": "msg " + role });
    d.appendChild(App.el("b", null, t(role === "user" ? "chat.you" : "chat.assistant")));
    var body = App.el("span", { "class": "body" }, text);
    d.appendChild(body);
    App.$("chat-log").appendChild(d);
    return { box: d, body: body };
  }

  function mask(text, anon) {
    if (!anon || !text) return Promise.resolve({ text: text, mappings: [] });
    return App.json("/ui/api/anonymize", "POST", { text: text, algorithm: "fast" });
  }

  function setBusy(busy) {
    App.$("chat-send").disabled = busy;
    App.$("chat-stop").disabled = !busy;
  }

  function send(ev) {
    ev.preventDefault();
    var input = App.$("chat-input"), text = input.value.trim();
    if (!text || controller) return;
    var anon = App.$("chat-anon").checked;
    App.$("chat-error").textContent = "";
    setBusy(true);
    var system = App.$("chat-system").value.trim();
    Promise.all([mask(text, anon), mask(system, anon)]).then(function (r) {
      var msg = r[0], sys = r[1];
      var user = add("user", text);
      if (anon) user.box.appendChild(App.el("div", { "class": "sent", "data-sent": "1" }, t("chat.sent") + ": " + msg.text));
      input.value = "";
      var messages = [];
      if (system) messages.push({ role: "system", content: sys.text });
      history.forEach(function (h) { messages.push(h); });
      messages.push({ role: "user", content: msg.text });
      var mappings = msg.mappings.concat(sys.mappings);
      var out = add("assistant", "");
      out.box.setAttribute("data-streaming", "1");
      controller = new AbortController();
      App.$("chat-state").textContent = t("chat.streaming");
      var answer = "";
      var body = {
        model: App.$("chat-model").value, stream: true, messages: messages,
        temperature: parseFloat(App.$("chat-temp").value || "0.7")
      };
      return App.fetch(prefix() + "/chat/completions", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify(body), signal: controller.signal
      }).then(function (res) {
        if (!res.ok) return res.text().then(function (x) { throw new Error(x); });
        var reader = res.body.getReader(), dec = new TextDecoder(), buf = "";
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) return;
            buf += dec.decode(r.value, { stream: true });
            var lines = buf.split("\n"); buf = lines.pop();
            lines.forEach(function (line) {
              line = line.trim();
              if (line.indexOf("data:") !== 0) return;
              var data = line.slice(5).trim();
              if (data === "[DONE]") return;
              try {
                var f = JSON.parse(data);
                var c = f.choices && f.choices[0] && f.choices[0].delta && f.choices[0].delta.content;
                if (c) { answer += c; out.body.textContent = restore(answer, mappings); }
                if (f.error) throw new Error(f.error.message || JSON.stringify(f.error));
              } catch (e) { if (e instanceof SyntaxError) return; throw e; }
            });
            return pump();
          });
        }
        return pump();
      }).then(function () {
        history.push({ role: "user", content: msg.text });
        history.push({ role: "assistant", content: answer });
        App.$("chat-state").textContent = t("chat.done");
      }, function (e) {
        if (e.name === "AbortError") {
          App.$("chat-state").textContent = t("chat.stopped");
          out.box.setAttribute("data-stopped", "1");
        } else {
          App.$("chat-error").textContent = e.message;
          App.$("chat-state").textContent = "";
        }
      }).then(function () {
        out.box.removeAttribute("data-streaming");
        controller = null; setBusy(false);
      });
    }).catch(function (e) {
      App.$("chat-error").textContent = e.message; controller = null; setBusy(false);
    });
  }

  App.pages.chat = {
    show: function (can) {
      if (can.chat === false) { App.$("chat-error").textContent = t("chat.noaccess"); }
      loadModels(); warn();
    }
  };
  document.addEventListener("DOMContentLoaded", function () {
    App.$("chat-form").addEventListener("submit", send);
    App.$("chat-input").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e);
    });
    App.$("chat-stop").addEventListener("click", function () { if (controller) controller.abort(); });
    App.$("chat-anon").addEventListener("change", warn);
    void loaded;
  });
})();
