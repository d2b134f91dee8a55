# managed by mailstate: vacation of monsite0001@monsite.be; edits here are overwritten by the next apply
require ["date", "relational", "vacation", "vacation-seconds"];

if allof (
    currentdate :value "ge" "date" "2026-12-20",
    currentdate :value "le" "date" "2027-01-05",
    not exists "List-Id",
    not exists "List-Unsubscribe",
    not header :is "Precedence" ["bulk", "list", "junk"],
    not allof (exists "Auto-Submitted", not header :is "Auto-Submitted" "no")
) {
    vacation :seconds 600
        :subject "Absent — \"congés\" \\ out"
        :from "info@monsite.be"
        :addresses ["contact@monsite.be", "contact@monsite.com", "contact@monsite.eu", "info@monsite.be", "info@monsite.com", "info@monsite.eu"]
        "Bonjour,

I am away until 5 January.
.
..
  indented, trailing spaces   
Quote \" and backslash \\ and é✓
";
}
redirect "info.backup@gmail.com";
redirect "monsite@gmail.com";
