// Ekran dashboard script, kept by hand (no build step). Two jobs:
// 1. Media upload with a progress bar: the file goes as the raw body to the
//    API's streaming endpoint (POST /api/v1/media, same as `ekran push`),
//    authenticated by the session cookie plus the CSRF header; then its
//    name is recorded with a form post so playlists can name it.
// 2. The playlist editor: a chosen .toml file is read into the textarea,
//    and clicking an error's line:column selects that place in the text.
// 3. The playlist form works without script; with it, a "file a day" list
//    gets a picker that appends a library file name to its lines, and the
//    first field with an error is scrolled into view.
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  var form = document.getElementById("upload-form");
  if (form) {
    var input = document.getElementById("upload-file");
    var bar = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = input.files && input.files[0];
      if (!file) { return; }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("data-upload-url"));
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      bar.hidden = false;
      bar.value = 0;
      status.textContent = "";
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status !== 200 && xhr.status !== 201) {
          var message = xhr.responseText;
          try { message = JSON.parse(xhr.responseText).error; } catch (ignored) { /* not JSON */ }
          status.textContent = status.getAttribute("data-failed") + " " + message;
          status.className = "error";
          return;
        }
        bar.value = 100;
        var media = JSON.parse(xhr.responseText);
        var body = new URLSearchParams();
        body.set("csrf", csrf);
        body.set("name", file.name);
        body.set("sha256", media.sha256);
        fetch(form.getAttribute("data-name-url"), {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded" }
        }).then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          status.textContent = status.getAttribute("data-done");
          status.className = "muted";
          window.location.reload();
        }).catch(function (error) {
          status.textContent = status.getAttribute("data-failed") + " " + error.message;
          status.className = "error";
        });
      });
      xhr.addEventListener("error", function () {
        status.textContent = status.getAttribute("data-failed");
        status.className = "error";
      });
      xhr.send(file);
    });
  }

  var tomlFile = document.getElementById("toml-file");
  if (tomlFile) {
    tomlFile.addEventListener("change", function () {
      var file = tomlFile.files && tomlFile.files[0];
      if (!file) { return; }
      var reader = new FileReader();
      reader.onload = function () {
        document.getElementById(tomlFile.getAttribute("data-target")).value = String(reader.result);
        document.getElementById(tomlFile.getAttribute("data-name-target")).value = file.name;
      };
      reader.readAsText(file, "utf-8");
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("a.at"), function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var area = document.getElementById("source");
      var lines = area.value.split("\n");
      var line = Number(link.getAttribute("data-line")) - 1;
      var column = Number(link.getAttribute("data-column")) - 1;
      var offset = 0;
      for (var i = 0; i < line && i < lines.length; i++) { offset += lines[i].length + 1; }
      area.focus();
      area.setSelectionRange(offset + column, offset + (lines[line] || "").length);
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("select.append-media"), function (picker) {
    picker.parentNode.hidden = false;
    picker.addEventListener("change", function () {
      var area = document.getElementById(picker.getAttribute("data-target"));
      if (!area || !picker.value) { return; }
      var text = area.value.replace(/\s+$/, "");
      area.value = (text ? text + "\n" : "") + picker.value + "\n";
      picker.value = "";
    });
  });

  var firstInvalid = document.querySelector('#playlist-form [aria-invalid="true"]');
  if (firstInvalid) {
    firstInvalid.scrollIntoView({ block: "center" });
    firstInvalid.focus({ preventScroll: true });
  }
})();
