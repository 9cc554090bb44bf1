// The Vocalis WebRTC page: microphone up, agent voice down, events on a data channel.
//
// The token comes from this page's own URL (?token=...) and goes back in an
// Authorization header. Signalling is a single POST /webrtc/offer once ICE gathering
// is complete. For tests and debugging the page exposes window.vocalisPc (the
// RTCPeerConnection), window.vocalisStates (every agent state shown) and
// window.vocalisEvents (every message received).
"use strict";

(() => {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  const button = document.getElementById("toggle");
  const stateEl = document.getElementById("agent-state");
  const transcript = document.getElementById("transcript");
  const notice = document.getElementById("notice");
  const audioEl = document.getElementById("agent-audio");

  window.vocalisPc = null;
  window.vocalisStates = [];
  window.vocalisEvents = [];

  let pc = null;
  let channel = null;
  let mic = null;
  let userLine = null; // the user line being spoken (interim text shows in place)
  let userFinal = ""; // final transcripts of the current user turn
  let agentLine = null; // the agent line being spoken

  const join = (a, b) => [a, b].filter((s) => s && s.trim()).join(" ").trim();

  function headers(extra) {
    return Object.assign({ Authorization: "Bearer " + token }, extra || {});
  }

  function say(text, isError) {
    notice.textContent = text || "";
    notice.classList.toggle("error", Boolean(isError));
  }

  function setState(state) {
    stateEl.dataset.agentState = state;
    stateEl.textContent = state;
    window.vocalisStates.push(state);
  }

  function setRunning(running) {
    button.dataset.running = String(running);
    button.textContent = running ? "Stop" : "Start";
  }

  function addLine(role) {
    const li = document.createElement("li");
    li.dataset.role = role;
    transcript.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  // -- session events --------------------------------------------------------
  function onUserSpeech(msg) {
    if (!msg.text && !userLine) return;
    if (!userLine) {
      userLine = addLine("user");
      userFinal = "";
    }
    if (msg.is_final) userFinal = join(userFinal, msg.text);
    userLine.textContent = msg.is_final ? userFinal : join(userFinal, msg.text);
    userLine.dataset.final = "false";
  }

  function onUserTurn(msg) {
    const line = userLine || addLine("user");
    if (msg.text) line.textContent = msg.text;
    line.dataset.final = "true";
    userLine = null;
    userFinal = "";
  }

  function onAgentSpeech(msg) {
    if (!msg.text) return;
    if (!agentLine) agentLine = addLine("agent");
    agentLine.textContent = join(agentLine.textContent, msg.text);
  }

  function onAgentTurn(msg) {
    if (!agentLine && !msg.text) return;
    const line = agentLine || addLine("agent");
    if (msg.text) line.textContent = msg.text; // what the user actually heard
    if (msg.interrupted) line.dataset.interrupted = "true";
    line.dataset.final = "true";
    agentLine = null;
  }

  function onMetrics(msg) {
    if (typeof msg.e2e_latency !== "number") return;
    const ms = Math.round(msg.e2e_latency * 1000);
    const li = addLine("latency");
    li.dataset.turn = String(msg.turn);
    li.dataset.latencyMs = String(ms);
    li.textContent = `turn ${msg.turn}: ${ms} ms from the end of your speech to the agent's voice`;
  }

  function handle(msg) {
    switch (msg.type) {
      case "on_speech_in": return onUserSpeech(msg);
      case "user_turn": return onUserTurn(msg);
      case "on_speech_out": return onAgentSpeech(msg);
      case "agent_turn": return onAgentTurn(msg);
      case "agent_state_changed": return setState(msg.state);
      case "metrics_collected": return onMetrics(msg);
      case "error": return say(`${msg.source || "error"}: ${msg.message || ""}`, true);
      case "close": return stop(false, `The session ended (${msg.reason || "closed"}).`);
      default: return undefined;
    }
  }

  // -- connection ----------------------------------------------------------------
  function iceGathered(conn, timeoutMs) {
    if (conn.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        conn.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (conn.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, timeoutMs); // send what we have
      conn.addEventListener("icegatheringstatechange", check);
    });
  }

  async function errorText(resp) {
    try {
      const body = await resp.clone().json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON */ }
    return (await resp.text()) || `HTTP ${resp.status}`;
  }

  async function start() {
    button.disabled = true;
    say("Connecting…");
    try {
      if (!navigator.mediaDevices || !window.isSecureContext) {
        throw new Error("the microphone needs https (or http://localhost)");
      }
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      const cfgResp = await fetch("webrtc/config", { headers: headers(), cache: "no-store" });
      if (!cfgResp.ok) throw new Error(await errorText(cfgResp));
      const cfg = await cfgResp.json();

      const conn = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
      pc = conn;
      window.vocalisPc = conn;
      mic.getTracks().forEach((track) => conn.addTrack(track, mic));
      channel = conn.createDataChannel("events");
      channel.onmessage = (event) => {
        let msg;
        try { msg = JSON.parse(event.data); } catch (_) { return; }
        window.vocalisEvents.push(msg);
        handle(msg);
      };
      channel.onclose = () => { if (pc === conn) stop(false, "The connection closed."); };
      conn.ontrack = (event) => {
        audioEl.srcObject = event.streams[0] || new MediaStream([event.track]);
        audioEl.play().catch(() => say("Click the page to hear the agent.", true));
      };
      conn.onconnectionstatechange = () => {
        const state = conn.connectionState;
        if (state === "connected") say("Connected: speak now.");
        if ((state === "failed" || state === "closed") && pc === conn) stop(false, `Connection ${state}.`);
      };

      await conn.setLocalDescription(await conn.createOffer());
      await iceGathered(conn, 3000);
      const resp = await fetch("webrtc/offer", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ sdp: conn.localDescription.sdp, type: conn.localDescription.type }),
      });
      if (!resp.ok) throw new Error(await errorText(resp));
      if (pc !== conn) return; // stopped meanwhile
      await conn.setRemoteDescription(await resp.json());
      setRunning(true);
    } catch (err) {
      stop(false);
      say(`Could not start: ${err.message || err}`, true);
    } finally {
      button.disabled = false;
    }
  }

  function stop(sayBye, why) {
    if (channel && channel.readyState === "open" && sayBye) {
      try { channel.send(JSON.stringify({ type: "bye" })); } catch (_) { /* closing anyway */ }
    }
    const conn = pc;
    pc = null;
    if (channel) channel.close();
    channel = null;
    if (conn) conn.close();
    if (mic) mic.getTracks().forEach((track) => track.stop());
    mic = null;
    audioEl.srcObject = null;
    userLine = null;
    agentLine = null;
    setRunning(false);
    if (why) say(why);
  }

  button.addEventListener("click", () => {
    if (button.dataset.running === "true" || pc) stop(true, "Stopped.");
    else start();
  });
  window.addEventListener("pagehide", () => { if (pc) stop(true); });
})();
