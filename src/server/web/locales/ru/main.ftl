# Ekran web dashboard — русский.

language-name = Русский

## Formatting rules of this language
number-group-separator = { "\u00A0" }
number-decimal-separator = ,
format-percent = { $value }{ "\u00A0" }%
format-date = { $day } { $month } { $year }
format-datetime = { $date }, { $time } { $zone }
month-1 = января
month-2 = февраля
month-3 = марта
month-4 = апреля
month-5 = мая
month-6 = июня
month-7 = июля
month-8 = августа
month-9 = сентября
month-10 = октября
month-11 = ноября
month-12 = декабря
unit-bytes = { $value } Б
unit-kib = { $value } КиБ
unit-mib = { $value } МиБ
unit-gib = { $value } ГиБ

## Roles
role-viewer = наблюдатель
role-manager = менеджер
role-admin = администратор

## Navigation
nav-menu = Меню
nav-reports = Отчёты
nav-playlists = Кампании
nav-media = Медиа
nav-fleet = Экраны
nav-tokens = Токены
nav-signed-in-as = { $name } ({ $role })
nav-sign-out = Выйти

## Errors
error-title = Ошибка { $status }
error-home = На главную
error-internal = На сервере что-то пошло не так; подробности в его журнале.
error-csrf = Форма отклонена: в ней нет её защитного токена (CSRF). Обновите страницу и попробуйте снова.
error-form-too-large = Форма слишком велика.
error-forbidden-role = Для этой страницы нужна роль «{ $needed }»; вы вошли как «{ $has }».
error-bad-date = «{ $value }» — не дата: укажите ГГГГ-ММ-ДД.

## Sign-in
signin-title = Вход
signin-help = Вставьте выданный вам API-токен (ekran token create). Он остаётся на сервере; браузер хранит только cookie сеанса.
signin-token = API-токен
signin-submit = Войти
signin-bad-token = Этот токен неизвестен или отозван.

## Reports
reports-title = Отчёты об эфире
reports-from = С
reports-to = По
reports-venue = Площадка
reports-campaign = Кампания
reports-all = Все
reports-apply = Показать
reports-csv = Скачать CSV
reports-period = { $from } – { $to }
reports-seconds = секунд в эфире
reports-plays = показов
reports-completed = завершено
reports-verified = подтверждено
reports-screens = экранов
reports-screen = Экран
reports-day = День
reports-table = По площадкам, кампаниям и дням
reports-empty = За этот период показов нет.
reports-proof = Доказательства по экранам
reports-proof-help = Подтверждённая доля — эфир, подкреплённый записями из непрерывной подписанной цепочки экрана; находки — пропуски, развилки и неверные подписи, найденные при приёме.
reports-findings = Находки аудита
reports-no-findings = открытых нет
reports-resolved = { $count ->
    [one] { $count } закрыта
    [few] { $count } закрыты
   *[many] { $count } закрыто
}
reports-no-screens = Ни один экран не сообщал о показах за этот период.
chart-seconds = Секунды в эфире
finding-gap = пропуск
finding-fork = развилка
finding-broken_link = разрыв цепочки
finding-bad_hash = неверный хеш
finding-bad_signature = неверная подпись

## Fleet
fleet-title = Экраны
fleet-pairings = Устройства, ожидающие подтверждения
fleet-no-pairings = Никто не ждёт. Новое устройство показывает на экране код сопряжения; он появится здесь.
fleet-no-venues = Сначала создайте площадку на странице «Площадки».
fleet-expires = истекает { $when }
fleet-venue = Площадка
fleet-groups = Группы
fleet-screen-id = Идентификатор экрана
fleet-optional = необязательно
fleet-approve = Подтвердить
fleet-screens = Экраны
fleet-online-rule = «В сети» — сигнал о состоянии за последние { $minutes } минут.
fleet-no-screens = Ни один экран ещё не подключён.
fleet-online = в сети
fleet-offline = не в сети
fleet-stale = устарел
fleet-heartbeat = Последний сигнал
fleet-never = никогда
fleet-current = Сейчас
fleet-manifest = Манифест
fleet-versions = опубликована v{ $published }, играет v{ $playing }
fleet-decoder = Декодер
fleet-graphics = Графика
fleet-hardware = аппаратный
fleet-software = программный
fleet-frames-dropped = Пропущено кадров
fleet-disk = Диск
fleet-disk-free = свободно { $free }, кэш { $cache }
fleet-last-error = Последняя ошибка
fleet-agent = Агент
fleet-screenshot-request = Запросить снимок экрана
fleet-screenshot-of = Снимок экрана { $screen }
fleet-screenshot-taken = Снят { $when }
fleet-screenshot-pending = Снимок запрошен { $when }; устройство пришлёт его после следующего сигнала.

## Tokens
tokens-title = API-токены
tokens-name = Имя
tokens-role = Роль
tokens-create = Создать токен
tokens-created = Токен «{ $name }» создан. Скопируйте секрет сейчас: больше он показан не будет.
tokens-created-at = Создан
tokens-state = Состояние
tokens-live = действует
tokens-revoked = отозван
tokens-revoke = Отозвать
tokens-name-required = У токена должно быть имя.

## Media
media-title = Медиатека
media-upload = Загрузка
media-upload-help = Ролики (MP4, WebM, MKV) и постеры (PNG, JPEG), до { $limit }. Тип определяется по содержимому.
media-upload-button = Загрузить
media-upload-done = Загружено.
media-upload-failed = Загрузка не удалась:
media-library = Файлы
media-duration-note = Длительность и кодек читаются из заголовка MP4, WebM или Matroska; сервер не декодирует видео, поэтому если заголовок их не содержит, они не показаны. Миниатюры роликов рисует ваш браузер.
media-name = Имя
media-type = Тип
media-size = Размер
media-duration = Длительность
media-used-by = Используется
media-uploaded = Загружен
media-unnamed = (загружен из CLI)
media-seconds = { $value } с
media-still = неподвижное изображение
media-unknown = неизвестно
media-unused = не используется
media-empty = Медиатека пуста.
media-bad-name = Имя файла пустое или недопустимое.
media-unknown-sha = На сервере нет такого файла.

## Campaigns and playlists
playlists-title = Кампании
playlists-new = Новый плейлист (TOML)
playlists-new-form = Новая кампания (форма)
playlists-stored = Плейлисты
playlists-none = Ещё ни один плейлист не опубликован.
playlists-campaign = Кампания
playlists-file = Файл
playlists-updated = Последняя публикация
playlists-edit = Изменить TOML
playlists-edit-form = Изменить в форме
playlists-publications = Что получил каждый экран
playlists-publications-help = Опубликована — новейшая версия манифеста для экрана. Играет — версия, о которой устройство сообщает в сигнале.
playlists-published-version = Опубликована
playlists-published-at = Когда
playlists-playing-version = Играет
playlists-took = актуально
playlists-behind = отстаёт
playlists-no-report = сигналов ещё не было
playlist-unknown = Для кампании «{ $campaign }» плейлиста нет.

## Editor
editor-title = Редактор плейлиста
editor-file-name = Имя файла
editor-load-file = Или загрузите файл .toml
editor-help = Формат плейлиста из playlists/FORMAT.md: campaign, targets, flight, [[item]] с media, windows, dates (постеры по датам), weight, priority, max_plays_per_hour и [[ticker]]. Медиа называются именами файлов из медиатеки.
editor-library = В медиатеке:
editor-errors = { $count ->
    [one] { $count } ошибка
    [few] { $count } ошибки
   *[many] { $count } ошибок
}
editor-at = строка { $line }, столбец { $column }:
editor-media-missing = элемент «{ $item }»: файла «{ $media }» нет в медиатеке; сначала загрузите его на странице «Медиа».
editor-media-gone = файл «{ $media }» исчез из медиатеки
editor-unknown-screen = Неизвестный экран «{ $screen }».
editor-valid = Плейлист корректен: «{ $campaign }», элементов: { $items }.
editor-tickers = Бегущая строка:
editor-screen = Экран для предпросмотра
editor-day = День
editor-check = Проверить
editor-preview = Предпросмотр расписания
editor-publish = Опубликовать
editor-preview-title = Расписание { $screen } на { $day } ({ $timezone })
editor-not-targeted = Этот плейлист не нацелен на { $screen }: там играют только другие кампании.
editor-with-others = Вместе с: { $campaigns }
editor-plays = { $count ->
    [one] { $count } показ
    [few] { $count } показа
   *[many] { $count } показов
}
editor-ticker-minutes = бегущая строка в эфире { $minutes } мин
editor-assumed = Длительность неизвестна для { $items }: принято по { $seconds } с.
editor-item = Элемент
editor-share = Доля
editor-first-last = Первый–последний
editor-published = Опубликовано: «{ $campaign }»
editor-published-screen = { $screen }: версия манифеста { $version }
