"""Postal addresses of the demo's customers, written the way each country's post expects them.

Segment's ``address`` trait: ``street``, ``city``, ``postalCode``, ``state`` and ``country`` (ISO
code). Each person's address comes from its own random generator (seed and person number), so
adding addresses changed nothing else about the people, and a person's address does not depend
on how many people are loaded.
"""

from __future__ import annotations

import random
import string
from typing import Any

# city: (state or province, postal codes from, to) — real ranges of each city's own codes.
ES_CITIES = {
    "Madrid": ("Madrid", 28001, 28055), "Barcelona": ("Barcelona", 8001, 8042), "Valencia": ("Valencia", 46001, 46026),
    "Sevilla": ("Sevilla", 41001, 41020), "Zaragoza": ("Zaragoza", 50001, 50021), "Málaga": ("Málaga", 29001, 29018),
    "Bilbao": ("Bizkaia", 48001, 48015), "Murcia": ("Murcia", 30001, 30012), "Palma": ("Illes Balears", 7001, 7015),
    "Valladolid": ("Valladolid", 47001, 47016), "Alicante": ("Alicante", 3001, 3016),
    "A Coruña": ("A Coruña", 15001, 15011), "Granada": ("Granada", 18001, 18015), "Vigo": ("Pontevedra", 36201, 36216),
    "Gijón": ("Asturias", 33201, 33213), "Pamplona": ("Navarra", 31001, 31016),
    "Las Palmas de Gran Canaria": ("Las Palmas", 35001, 35019),
    "Santa Cruz de Tenerife": ("Santa Cruz de Tenerife", 38001, 38010),
}
ES_STREETS = ["Calle Mayor", "Calle de Alcalá", "Avenida de la Constitución", "Calle Real", "Calle del Carmen",
              "Paseo de la Castellana", "Calle San Francisco", "Avenida de América", "Calle Nueva", "Calle del Sol",
              "Calle de la Iglesia", "Plaza de España", "Calle Goya", "Calle Cervantes", "Avenida del Puerto",
              "Calle Santa Ana", "Ronda de Valencia", "Calle Princesa", "Calle de Toledo", "Avenida Andalucía"]
MX_CITIES = {
    "Ciudad de México": ("CDMX", ["Roma Norte", "Condesa", "Del Valle", "Narvarte", "Polanco", "Coyoacán",
                                  "Nápoles", "Escandón"], 1000, 16999),
    "Guadalajara": ("Jal.", ["Americana", "Providencia", "Chapalita", "Ladrón de Guevara"], 44100, 44990),
    "Monterrey": ("N.L.", ["Centro", "Obispado", "Mitras Centro", "Contry"], 64000, 64990),
    "Puebla": ("Pue.", ["Centro", "La Paz", "Anzures", "Huexotitla"], 72000, 72590),
    "Querétaro": ("Qro.", ["Centro", "Jardines de la Hacienda", "Álamos"], 76000, 76250),
    "León": ("Gto.", ["Centro", "Jardines del Moral", "León Moderno"], 37000, 37690),
    "Toluca": ("Méx.", ["Centro", "Universidad", "Morelos"], 50000, 50295),
    "Mérida": ("Yuc.", ["Centro", "García Ginerés", "Itzimná", "Montejo"], 97000, 97320),
    "Cancún": ("Q.R.", ["Supermanzana 4", "Supermanzana 15", "Alfredo V. Bonfil"], 77500, 77539),
    "Tijuana": ("B.C.", ["Zona Río", "Chapultepec", "Otay"], 22000, 22690),
    "San Luis Potosí": ("S.L.P.", ["Centro", "Tequisquiapan", "Lomas"], 78000, 78399),
    "Aguascalientes": ("Ags.", ["Centro", "Jardines de la Asunción", "Del Trabajo"], 20000, 20299),
}
MX_STREETS = ["Av. Insurgentes Sur", "Calle Durango", "Av. Juárez", "Calle Morelos", "Av. Hidalgo", "Calle Allende",
              "Calle Zaragoza", "Av. Revolución", "Calle Guerrero", "Av. Universidad", "Calle Madero", "Calle Colima"]
US_CITIES = {
    "New York": ("NY", 10001, 10282), "Miami": ("FL", 33125, 33199), "Boston": ("MA", 2108, 2137),
    "Atlanta": ("GA", 30303, 30363), "Chicago": ("IL", 60601, 60661), "Houston": ("TX", 77002, 77099),
    "Dallas": ("TX", 75201, 75254), "San Antonio": ("TX", 78201, 78266), "Los Angeles": ("CA", 90001, 90068),
    "San Diego": ("CA", 92101, 92199), "San Francisco": ("CA", 94102, 94134), "Seattle": ("WA", 98101, 98199),
    "Phoenix": ("AZ", 85003, 85054), "Denver": ("CO", 80202, 80249),
}
US_STREETS = ["Main St", "Oak Ave", "Maple St", "Park Ave", "Washington Blvd", "Elm St", "Lake Shore Dr",
              "Pine St", "Cedar Ln", "Sunset Blvd", "2nd Ave", "Broadway", "Jefferson St", "Highland Ave"]
# city: postcode areas with their district numbers.
GB_CITIES = {
    "London": {"SW": range(1, 20), "NW": range(1, 11), "SE": range(1, 28), "N": range(1, 22), "E": range(1, 18),
               "W": range(2, 14)},
    "Manchester": {"M": range(1, 46)}, "Birmingham": {"B": range(1, 46)}, "Leeds": {"LS": range(1, 29)},
    "Glasgow": {"G": range(1, 54)}, "Liverpool": {"L": range(1, 38)}, "Bristol": {"BS": range(1, 17)},
    "Edinburgh": {"EH": range(1, 17)}, "Cardiff": {"CF": range(3, 25)}, "Belfast": {"BT": range(1, 18)},
    "Newcastle upon Tyne": {"NE": range(1, 16)},
}
GB_STREETS = ["High Street", "Station Road", "Church Lane", "Victoria Road", "Park Road", "Queen Street",
              "King's Road", "Mill Lane", "Green Lane", "The Crescent", "Manor Road", "York Road", "Albert Street"]
# Letters Royal Mail leaves out of the inward code.
GB_INWARD = "".join(ch for ch in string.ascii_uppercase if ch not in "CIKMOV")


def postal_address(seed: int, index: int, country: str, city: str) -> dict[str, Any]:
    """Segment's ``address`` object for person ``index`` living in ``city``."""
    rng = random.Random(f"trato-demo:{seed}:{index}:address")
    if country == "ES":
        state, low, high = ES_CITIES[city]
        street = f"{rng.choice(ES_STREETS)}, {rng.randint(1, 180)}"
        if rng.random() < 0.8:  # most people live in flats
            street += f", {rng.randint(1, 9)}.º {rng.choice('ABCDEFI')}"
        return {"street": street, "city": city, "postalCode": f"{rng.randint(low, high):05d}", "state": state,
                "country": country}
    if country == "MX":
        state, colonias, low, high = MX_CITIES[city]
        number = f"{rng.randint(10, 2999)}" + (f" int. {rng.randint(1, 12)}" if rng.random() < 0.5 else "")
        return {"street": f"{rng.choice(MX_STREETS)} {number}, Col. {rng.choice(colonias)}", "city": city,
                "postalCode": f"{rng.randint(low, high):05d}", "state": state, "country": country}
    if country == "US":
        state, low, high = US_CITIES[city]
        street = f"{rng.randint(10, 9899)} {rng.choice(US_STREETS)}"
        if rng.random() < 0.45:
            street += f" Apt {rng.randint(1, 24)}{rng.choice('ABCD')}"
        return {"street": street, "city": city, "postalCode": f"{rng.randint(low, high):05d}", "state": state,
                "country": country}
    areas = GB_CITIES[city]
    area = rng.choice(sorted(areas))
    postcode = f"{area}{rng.choice(areas[area])} {rng.randint(1, 9)}{rng.choice(GB_INWARD)}{rng.choice(GB_INWARD)}"
    flat = f"Flat {rng.randint(1, 30)}, " if rng.random() < 0.3 else ""
    return {"street": f"{flat}{rng.randint(1, 240)} {rng.choice(GB_STREETS)}", "city": city, "postalCode": postcode,
            "country": country}
