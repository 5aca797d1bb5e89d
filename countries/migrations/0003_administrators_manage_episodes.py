"""Let Administrators record, edit and delete mass-killing episodes in the admin.

Analysts and focal points see episodes on the country page only, so they get no
admin permission on them.
"""

from django.db import migrations

ACTIONS = ["view", "add", "change", "delete"]


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("countries")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name="Administrator")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="countries",
            codename__in=[f"{action}_masskillingepisode" for action in ACTIONS],
        )
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name="Administrator"):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="countries", codename__endswith="_masskillingepisode"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("countries", "0002_mass_killing_episode"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
