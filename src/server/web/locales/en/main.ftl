# Ekran web dashboard — English. Every UI string; a new language is a copy
# of this file in a folder named by its tag (e.g. tg/main.ftl), translated.

language-name = English

## Formatting rules of this language
number-group-separator = ,
number-decimal-separator = .
format-percent = { $value }%
format-date = { $month } { $day }, { $year }
format-datetime = { $date }, { $time } { $zone }
month-1 = Jan
month-2 = Feb
month-3 = Mar
month-4 = Apr
month-5 = May
month-6 = Jun
month-7 = Jul
month-8 = Aug
month-9 = Sep
month-10 = Oct
month-11 = Nov
month-12 = Dec
unit-bytes = { $value } B
unit-kib = { $value } KiB
unit-mib = { $value } MiB
unit-gib = { $value } GiB

## Roles
role-viewer = viewer
role-manager = manager
role-admin = admin

## Navigation
nav-menu = Menu
nav-reports = Reports
nav-playlists = Campaigns
nav-media = Media
nav-fleet = Fleet
nav-tokens = Tokens
nav-signed-in-as = { $name } ({ $role })
nav-sign-out = Sign out

## Errors
error-title = Error { $status }
error-home = Back to the start page
error-internal = Something went wrong on the server; the details are in its log.
error-csrf = This form was refused: it did not carry its security token (CSRF). Reload the page and try again.
error-form-too-large = The form is too large.
error-forbidden-role = This page needs the { $needed } role; you are signed in as { $has }.
error-bad-date = “{ $value }” is not a date: use YYYY-MM-DD.

## Sign-in
signin-title = Sign in
signin-help = Paste the API token you were given (ekran token create). It stays on this server; the browser keeps only a session cookie.
signin-token = API token
signin-submit = Sign in
signin-bad-token = This token is unknown or revoked.

## Reports
reports-title = Airtime reports
reports-from = From
reports-to = To
reports-venue = Venue
reports-campaign = Campaign
reports-all = All
reports-apply = Show
reports-csv = Download CSV
reports-period = { $from } – { $to }
reports-seconds = seconds on screen
reports-plays = plays
reports-completed = completed
reports-verified = verified
reports-screens = screens
reports-screen = Screen
reports-day = Day
reports-table = Per venue, campaign and day
reports-empty = No plays in this period.
reports-proof = Proof per screen
reports-proof-help = The verified share is the airtime backed by records in the screen's unbroken signed chain; findings are gaps, forks and bad signatures found on ingest.
reports-findings = Audit findings
reports-no-findings = none open
reports-resolved = { $count ->
    [one] { $count } resolved
   *[other] { $count } resolved
}
reports-no-screens = No screen reported plays in this period.
chart-seconds = Seconds on screen
finding-gap = gap
finding-fork = fork
finding-broken_link = broken link
finding-bad_hash = bad hash
finding-bad_signature = bad signature

## Fleet
fleet-title = Fleet
fleet-pairings = Boxes waiting for approval
fleet-no-pairings = No box is waiting. A new box shows a pairing code on its screen; it appears here.
fleet-no-venues = Create a venue first, on the Venues page.
fleet-expires = expires { $when }
fleet-venue = Venue
fleet-groups = Groups
fleet-screen-id = Screen id
fleet-optional = optional
fleet-approve = Approve
fleet-screens = Screens
fleet-online-rule = Online means a heartbeat within the last { $minutes } minutes.
fleet-no-screens = No screen is enrolled yet.
fleet-online = online
fleet-offline = offline
fleet-stale = stale
fleet-heartbeat = Last heartbeat
fleet-never = never
fleet-current = Playing
fleet-manifest = Manifest
fleet-versions = published v{ $published }, playing v{ $playing }
fleet-decoder = Decoder
fleet-graphics = Graphics
fleet-hardware = hardware
fleet-software = software
fleet-frames-dropped = Frames dropped
fleet-disk = Disk
fleet-disk-free = { $free } free, cache { $cache }
fleet-last-error = Last error
fleet-agent = Agent
fleet-screenshot-request = Request screenshot
fleet-screenshot-of = Screenshot of { $screen }
fleet-screenshot-taken = Taken { $when }
fleet-screenshot-pending = Screenshot requested { $when }; the box sends it on its next heartbeat.

## Tokens
tokens-title = API tokens
tokens-name = Name
tokens-role = Role
tokens-create = Create token
tokens-created = Token “{ $name }” created. Copy the secret now: it is not shown again.
tokens-created-at = Created
tokens-state = State
tokens-live = live
tokens-revoked = revoked
tokens-revoke = Revoke
tokens-name-required = A token needs a name.

## Media
media-title = Media library
media-upload = Upload
media-upload-help = Clips (MP4, WebM, MKV) and posters (PNG, JPEG), up to { $limit }. The type is judged by the content.
media-upload-button = Upload
media-upload-done = Uploaded.
media-upload-failed = Upload failed:
media-library = Files
media-duration-note = Durations and codecs are read from the MP4, WebM or Matroska header; the server decodes no video, so a file whose header does not say shows none. Clip thumbnails are drawn by your browser.
media-name = Name
media-type = Type
media-size = Size
media-duration = Duration
media-used-by = Used by
media-uploaded = Uploaded
media-unnamed = (uploaded by the CLI)
media-seconds = { $value } s
media-still = still image
media-unknown = unknown
media-unused = not used
media-empty = The library is empty.
media-bad-name = The file name is empty or not allowed.
media-unknown-sha = No such media on this server.

## Campaigns and playlists
playlists-title = Campaigns
playlists-new = New playlist (TOML)
playlists-new-form = New campaign (form)
playlists-stored = Playlists
playlists-none = No playlist has been published yet.
playlists-campaign = Campaign
playlists-file = File
playlists-updated = Last published
playlists-edit = Edit the TOML
playlists-edit-form = Edit in the form
playlists-publications = What each screen took
playlists-publications-help = Published: the newest manifest version made for the screen. Playing: the version the box reports in its heartbeat.
playlists-published-version = Published
playlists-published-at = Published at
playlists-playing-version = Playing
playlists-took = up to date
playlists-behind = behind
playlists-no-report = no heartbeat yet
playlist-unknown = No playlist for campaign “{ $campaign }”.

## Editor
editor-title = Playlist editor
editor-file-name = File name
editor-load-file = Or load a .toml file
editor-help = The playlist format of playlists/FORMAT.md: campaign, targets, flight, [[item]] with media, windows, dates (per-date posters), weight, priority, max_plays_per_hour, and [[ticker]]. Media are named by the file names in the library.
editor-library = In the library:
editor-errors = { $count ->
    [one] { $count } problem
   *[other] { $count } problems
}
editor-at = line { $line }, column { $column }:
editor-media-missing = item “{ $item }”: media “{ $media }” is not in the library; upload it on the Media page first.
editor-media-gone = media “{ $media }” disappeared from the library
editor-unknown-screen = Unknown screen “{ $screen }”.
editor-valid = The playlist is valid: “{ $campaign }”, { $items } items.
editor-tickers = Ticker:
editor-screen = Preview screen
editor-day = Day
editor-check = Check
editor-preview = Preview schedule
editor-publish = Publish
editor-preview-title = Schedule of { $screen } on { $day } ({ $timezone })
editor-not-targeted = This playlist does not target { $screen }: only other campaigns play there.
editor-with-others = Together with: { $campaigns }
editor-plays = { $count ->
    [one] { $count } play
   *[other] { $count } plays
}
editor-ticker-minutes = ticker on screen { $minutes } min
editor-assumed = Length unknown for { $items }: assumed { $seconds } s each.
editor-item = Item
editor-share = Share
editor-first-last = First–last
editor-published = Published “{ $campaign }”
editor-published-screen = { $screen }: manifest version { $version }
