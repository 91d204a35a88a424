"""A labelled recall set where each retriever alone fails somewhere: exact identifiers and
error codes (near-identical sentences that differ only in the code: embeddings cannot tell
them apart, keywords can) and paraphrases (no word in common with the memory: keywords cannot
match, embeddings can). Each query names the one memory it should find."""

from __future__ import annotations

# (memory key, text)
MEMORIES: list[tuple[str, str]] = [
    # identifiers: same sentence, other code
    ("inc-4821", "Incident JIRA-4821: checkout service returned HTTP 502 after the deploy"),
    ("inc-4812", "Incident JIRA-4812: checkout service returned HTTP 503 after the deploy"),
    ("inc-4281", "Incident JIRA-4281: checkout service returned HTTP 504 after the rollout"),
    ("err-e1047", "Payment gateway rejected the card with error E1047 during the nightly batch"),
    ("err-e1074", "Payment gateway rejected the card with error E1074 during the nightly run"),
    ("err-e7104", "Payment gateway declined the card with error E7104 during the batch job"),
    ("ord-a9f3", "Order A9F3-22K was shipped to the Lyon warehouse on Tuesday"),
    ("ord-a9f2", "Order A9F2-22K was shipped to the Lyon warehouse on Monday"),
    ("ord-b9f3", "Order B9F3-22X was shipped to the Lyon depot on Tuesday"),
    ("cve", "Security scan flagged CVE-2024-3094 in the base image of the build agents"),
    ("cve2", "Security scan flagged CVE-2023-4863 in the base image of the build runners"),
    ("cve3", "Security scan flagged CVE-2024-6387 in the base image of the deploy agents"),
    ("sku-1", "Customer asked about SKU 88-1042-BLK availability in size medium"),
    ("sku-2", "Customer asked about SKU 88-1024-BLK availability in size large"),
    ("sku-3", "Customer asked about SKU 88-4210-BLK availability in size small"),
    ("host-1", "Disk usage on host db-prod-07 crossed ninety percent at noon"),
    ("host-2", "Disk usage on host db-prod-01 crossed ninety percent at midnight"),
    ("host-3", "Disk usage on host db-prod-70 crossed eighty percent at noon"),
    ("exit-137", "The worker container exited with code 137 under memory pressure"),
    ("exit-139", "The worker container exited with code 139 after a segfault"),
    # identifiers inside longer sentences: the code is a small part of what the vector holds
    (
        "t48213",
        "Ticket 48213: a customer in Ohio reports the mobile app crashes while uploading photos",
    ),
    (
        "t48231",
        "Ticket 48231: a customer in Iowa reports the mobile app freezes while uploading videos",
    ),
    (
        "t43821",
        "Ticket 43821: a customer in Idaho reports the mobile app hangs while uploading files",
    ),
    (
        "t41823",
        "Ticket 41823: a customer in Texas reports the mobile app stalls while uploading audio",
    ),
    ("c9f2c1ab", "Commit 9f2c1ab reworked the validation of the login form and its error messages"),
    ("c9f2c1ba", "Commit 9f2c1ba reworked the styling of the login page and its error banners"),
    ("c9fc21ab", "Commit 9fc21ab reworked the routing of the login flow and its error pages"),
    ("run-1", "Workflow run 7d3e91ab stopped at the approval step waiting for finance"),
    ("run-2", "Workflow run 7d3e19ab stopped at the review step waiting for legal"),
    ("run-3", "Workflow run 7e3d91ab stopped at the signing step waiting for the director"),
    # paraphrase targets: the query shares no word with the memory
    ("refund", "The customer wants her money back because the blender arrived broken"),
    ("vegan", "Maria does not eat meat, eggs or dairy products"),
    ("flight", "Tom is scared of flying and prefers to take trains for long journeys"),
    ("birthday", "Priya turns thirty next Friday and loves chocolate cake"),
    ("laptop", "The sales team's notebooks overheat when running the video call software"),
    ("move", "Sam relocated from Boston to Denver last spring for a new job"),
    ("allergy", "Leo gets hives and swelling after eating peanuts"),
    ("password", "Anna forgot her login secret and was locked out of the portal"),
    ("budget", "Marketing spent more than planned on advertising this quarter"),
    ("vacation", "Kenji will be away on holiday in Portugal for the first two weeks of August"),
    ("slow", "Pages on the storefront take ages to appear for visitors in Asia"),
    ("dog", "Elena adopted a puppy from the shelter on Saturday"),
]

# (query, the memory key it should find, kind)
QUERIES: list[tuple[str, str, str]] = [
    ("JIRA-4821", "inc-4821", "exact"),
    ("what happened in JIRA-4812", "inc-4812", "exact"),
    ("E1047", "err-e1047", "exact"),
    ("card rejected E7104", "err-e7104", "exact"),
    ("order A9F3-22K", "ord-a9f3", "exact"),
    ("A9F2-22K shipment", "ord-a9f2", "exact"),
    ("CVE-2024-3094", "cve", "exact"),
    ("was CVE-2024-6387 found", "cve3", "exact"),
    ("SKU 88-1024-BLK", "sku-2", "exact"),
    ("88-4210-BLK", "sku-3", "exact"),
    ("db-prod-07", "host-1", "exact"),
    ("db-prod-70 disk", "host-3", "exact"),
    ("exit code 137", "exit-137", "exact"),
    ("code 139", "exit-139", "exact"),
    ("48231", "t48231", "exact"),
    ("ticket 43821", "t43821", "exact"),
    ("41823", "t41823", "exact"),
    ("48213", "t48213", "exact"),
    ("9f2c1ba", "c9f2c1ba", "exact"),
    ("what did 9fc21ab change", "c9fc21ab", "exact"),
    ("9f2c1ab", "c9f2c1ab", "exact"),
    ("7d3e19ab", "run-2", "exact"),
    ("run 7e3d91ab", "run-3", "exact"),
    ("7d3e91ab", "run-1", "exact"),
    ("refund request for a faulty kitchen appliance", "refund", "paraphrase"),
    ("dietary restrictions: plant-based diet", "vegan", "paraphrase"),
    ("afraid of airplanes, travel by rail", "flight", "paraphrase"),
    ("upcoming celebration of someone's age, favourite dessert", "birthday", "paraphrase"),
    ("computers get too hot during meetings online", "laptop", "paraphrase"),
    ("moved to Colorado", "move", "paraphrase"),
    ("nut allergy reaction", "allergy", "paraphrase"),
    ("user cannot sign in, credentials lost", "password", "paraphrase"),
    ("overspending on ads", "budget", "paraphrase"),
    ("out of office in Lisbon during summer", "vacation", "paraphrase"),
    ("website latency is bad for Asian users", "slow", "paraphrase"),
    ("new pet", "dog", "paraphrase"),
]
