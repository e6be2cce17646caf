// Console strings, Polish and English. t(key) picks the current language.
"use strict";
window.I18N = {
  pl: {
    "nav.status": "Status", "nav.chat": "Czat", "nav.anonymizer": "Anonimizacja", "nav.config": "Konfiguracja",
    "ui.language": "Język", "ui.theme": "Motyw", "ui.logout": "Wyloguj",
    "login.title": "Logowanie", "login.help": "Ten router wymaga klucza API.", "login.key": "Klucz API",
    "login.submit": "Zaloguj", "login.failed": "Logowanie nieudane",
    "status.updated": "Odświeżono", "status.model": "Model", "status.provider": "Dostawca", "status.type": "Typ",
    "status.health": "Stan", "status.inflight": "W toku", "status.requests": "Żądania (5 min)",
    "status.errors": "Błędy", "status.latency": "Opóźnienie p50/p95", "status.ttft": "TTFT p50/p95",
    "status.noaccess": "Status wymaga klucza z polityką admin.",
    "health.healthy": "sprawny", "health.open": "niedostępny", "health.half_open": "próba",
    "chat.model": "Model", "chat.temperature": "Temperatura", "chat.anonymize": "Anonimizuj",
    "chat.system": "Prompt systemowy", "chat.message": "Wiadomość", "chat.send": "Wyślij", "chat.stop": "Zatrzymaj",
    "chat.warn_off": "Anonimizacja wyłączona: tekst trafia do modelu dokładnie tak, jak go wpisano (także dane osobowe).",
    "chat.sent": "Wysłano (po anonimizacji)", "chat.you": "Ty", "chat.assistant": "Model",
    "chat.streaming": "Odpowiedź napływa…", "chat.stopped": "Zatrzymano", "chat.done": "Gotowe",
    "chat.noaccess": "Ten klucz nie może używać czatu.",
    "anon.input": "Tekst", "anon.algorithm": "Algorytm", "anon.run": "Anonimizuj", "anon.copy": "Kopiuj",
    "anon.copied": "Skopiowano", "anon.restore": "Przywróć", "anon.masked": "Tekst zanonimizowany",
    "anon.restored": "Tekst przywrócony", "anon.mappings": "Mapowania", "anon.placeholder": "Znacznik",
    "anon.type": "Typ", "anon.original": "Oryginał", "anon.found": "Znaleziono: ",
    "config.active": "Aktywne modele", "config.editor": "Plik models-config.json", "config.tokens": "Tokeny nigdy nie trafiają do przeglądarki; znacznik __stored_secret__ zachowuje zapisany token.",
    "config.apply": "Zastosuj", "config.reset": "Wczytaj ponownie", "config.export": "Eksportuj", "config.import": "Importuj",
    "config.history": "Historia wersji", "config.version": "Wersja", "config.time": "Zastosowano", "config.cause": "Powód",
    "config.diff": "Różnice", "config.show_diff": "Różnice", "config.restore": "Przywróć",
    "config.applied": "Zastosowano wersję ", "config.noaccess": "Konfiguracja wymaga klucza z polityką admin.",
    "config.badjson": "To nie jest poprawny JSON: ", "config.diff_vs": "Wersja {a} → bieżąca konfiguracja",
    "config.imported": "Wczytano plik; sprawdź i kliknij Zastosuj.", "config.nodiff": "Brak różnic."
  },
  en: {
    "nav.status": "Status", "nav.chat": "Chat", "nav.anonymizer": "Anonymizer", "nav.config": "Config",
    "ui.language": "Language", "ui.theme": "Theme", "ui.logout": "Log out",
    "login.title": "Log in", "login.help": "This router requires an API key.", "login.key": "API key",
    "login.submit": "Log in", "login.failed": "Log-in failed",
    "status.updated": "Updated", "status.model": "Model", "status.provider": "Provider", "status.type": "Type",
    "status.health": "Health", "status.inflight": "In flight", "status.requests": "Requests (5 min)",
    "status.errors": "Errors", "status.latency": "Latency p50/p95", "status.ttft": "TTFT p50/p95",
    "status.noaccess": "Status needs a key with the admin policy.",
    "health.healthy": "healthy", "health.open": "down", "health.half_open": "probing",
    "chat.model": "Model", "chat.temperature": "Temperature", "chat.anonymize": "Anonymize",
    "chat.system": "System prompt", "chat.message": "Message", "chat.send": "Send", "chat.stop": "Stop",
    "chat.warn_off": "Anonymization is off: your text goes to the model exactly as typed (personal data included).",
    "chat.sent": "Sent (anonymized)", "chat.you": "You", "chat.assistant": "Model",
    "chat.streaming": "Streaming…", "chat.stopped": "Stopped", "chat.done": "Done",
    "chat.noaccess": "This key may not use chat.",
    "anon.input": "Text", "anon.algorithm": "Algorithm", "anon.run": "Anonymize", "anon.copy": "Copy",
    "anon.copied": "Copied", "anon.restore": "Restore", "anon.masked": "Masked text",
    "anon.restored": "Restored text", "anon.mappings": "Mappings", "anon.placeholder": "Placeholder",
    "anon.type": "Type", "anon.original": "Original", "anon.found": "Found: ",
    "config.active": "Active models", "config.editor": "The models-config.json file", "config.tokens": "Tokens never reach the browser; the __stored_secret__ placeholder keeps the stored token.",
    "config.apply": "Apply", "config.reset": "Reload", "config.export": "Export", "config.import": "Import",
    "config.history": "Version history", "config.version": "Version", "config.time": "Applied", "config.cause": "Cause",
    "config.diff": "Diff", "config.show_diff": "Diff", "config.restore": "Restore",
    "config.applied": "Applied as version ", "config.noaccess": "Config needs a key with the admin policy.",
    "config.badjson": "Not valid JSON: ", "config.diff_vs": "Version {a} → current config",
    "config.imported": "File loaded; review it and click Apply.", "config.nodiff": "No differences."
  }
};
window.t = function (key) {
  var lang = (window.App && App.lang) || "pl";
  var d = I18N[lang] || I18N.pl;
  return d[key] !== undefined ? d[key] : (I18N.en[key] || key);
};
