// ---- start: once every part of the script is defined ------------------------------------------------
limitFields = mountLimits($("sendLimits"));
batchLimitFields = mountLimits($("batchLimits"));
$("sendAt").addEventListener("input", updateChannel);
buildCountries();
buildScopes();
resetTemplateForm();
chooseSendTemplate();
chooseBatchTemplate();
checkKey();
// While the service is away, ask again now and then what the key may do; the history and the dashboard keep their
// own times (schedulePoll, scheduleDashboard).
setInterval(() => { if (who.state === "unknown" && !document.hidden) checkKey(); }, 5000);
