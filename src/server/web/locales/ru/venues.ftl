# Страница площадок (src/server/web/venues.rs, templates/venues.html).

nav-venues = Площадки
venues-title = Площадки и группы
venues-refused = Не сохранено:
venues-new = Новая площадка
venues-id = Идентификатор
venues-id-rule = Идентификатор: 1–64 латинские буквы, цифры, «-», «_» и «.», не начинается с «.»; потом его не изменить. Часовой пояс — имя IANA, например Europe/Kyiv или UTC: по нему отчёты считают дни, а плейлисты — часы.
venues-name = Название
venues-name-default = как идентификатор
venues-timezone = Часовой пояс
venues-create = Создать площадку
venues-list = Площадки
venues-none = Площадок пока нет.
venues-local-time = Местное время сейчас
venues-screens = Экраны
venues-screen-count = { $count ->
    [0] нет экранов
    [one] { $count } экран
    [few] { $count } экрана
   *[many] { $count } экранов
}
venues-save = Сохранить площадку
venues-venue = Площадка
venues-groups = Группы
venues-save-screen = Сохранить экран
venues-delete = Удалить площадку
venues-delete-rule = Удалить можно только площадку без экранов: сначала перенесите её экраны.
venues-groups-title = Группы
venues-groups-help = Плейлисты выбирают экраны по группам. Группа появляется, когда в неё впервые входит экран.
venues-group = Группа
venues-group-empty = нет экранов
venues-no-groups = Групп пока нет: задайте экрану группу выше.
