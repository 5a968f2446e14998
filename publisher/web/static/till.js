// The till's camera scan: the browser's BarcodeDetector fills in the code field and sends the
// form. Typing always works; without the API (or a camera) the scan button stays hidden.
"use strict";
(function () {
  var confirmForm = document.getElementById("confirm-form");
  if (confirmForm) {
    confirmForm.addEventListener("submit", function () {
      var button = confirmForm.querySelector("button[type=submit]");
      if (button) { setTimeout(function () { button.disabled = true; }, 0); }
    });
  }
  var button = document.getElementById("scan");
  var video = document.getElementById("camera");
  var input = document.getElementById("code");
  var form = document.getElementById("code-form");
  if (!button || !video || !input || !form) { return; }
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
  button.classList.remove("hidden");
  var stream = null;
  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.classList.add("hidden");
  }
  button.addEventListener("click", function () {
    if (stream) { stop(); return; }
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.classList.remove("hidden");
        return video.play();
      })
      .then(function look() {
        if (!stream) { return; }
        detector.detect(video).then(function (found) {
          if (found.length) {
            input.value = found[0].rawValue;
            stop();
            form.submit();
          } else {
            requestAnimationFrame(look);
          }
        }, function () { requestAnimationFrame(look); });
      })
      .catch(function () { stop(); button.classList.add("hidden"); input.focus(); });
  });
})();
