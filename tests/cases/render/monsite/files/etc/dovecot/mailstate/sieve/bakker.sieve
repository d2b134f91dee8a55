# managed by mailstate: vacation of bakker@bakkerij.be; edits here are overwritten by the next apply
require ["date", "relational", "vacation", "vacation-seconds"];

if allof (
    not exists "List-Id",
    not exists "List-Unsubscribe",
    not header :is "Precedence" ["bulk", "list", "junk"],
    not allof (exists "Auto-Submitted", not header :is "Auto-Submitted" "no")
) {
    vacation :seconds 86400
        :subject "Gesloten"
        :addresses ["bakker@bakkerij.be"]
        "We zijn gesloten.";
}
