# The venues page (src/server/web/venues.rs, templates/venues.html).
# Every key here must also be in ../ru/venues.ftl (a test checks).

nav-venues = Venues
venues-title = Venues and groups
venues-refused = Not saved:
venues-new = New venue
venues-id = Id
venues-id-rule = Id: 1–64 letters, digits, “-”, “_” and “.”, not starting with “.”; it cannot be changed later. The time zone is an IANA name such as Europe/Kyiv or UTC: reports count days and playlists their hours in it.
venues-name = Name
venues-name-default = same as the id
venues-timezone = Time zone
venues-create = Create venue
venues-list = Venues
venues-none = No venues yet.
venues-local-time = Local time now
venues-screens = Screens
venues-screen-count = { $count ->
    [0] no screens
    [one] { $count } screen
   *[other] { $count } screens
}
venues-save = Save venue
venues-venue = Venue
venues-groups = Groups
venues-save-screen = Save screen
venues-delete = Delete venue
venues-delete-rule = Only a venue without screens can be deleted: move its screens first.
venues-groups-title = Groups
venues-groups-help = Playlists target screens by group. A group is created when a screen first joins it.
venues-group = Group
venues-group-empty = no screens
venues-no-groups = No groups yet: give a screen a group above.
